with

source as (

    select * from {{ crm_source('orders') }}

),

renamed as (

    select
        order_id,
        profile_id,
        ordered_at,
        amount,
        currency

    from source

)

select * from renamed
